"""Convex Lasso of deep absolute-value networks: dictionary, solver, certificates, estimators."""
from .estimator import ReflectionLasso, ReflectionLassoClassifier, evaluate_features

__all__ = ["ReflectionLasso", "ReflectionLassoClassifier", "evaluate_features"]
