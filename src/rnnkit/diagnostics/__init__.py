"""Diagnostics: gradient checking and (spec "Vanishing / exploding gradients") gradient flow."""

from .flow import gradient_flow
from .gradcheck import gradcheck
from .jacobians import cell_flow, state_jacobians
from .monitor import GradientFlowMonitor
from .report import DirectionFlow, GradientFlowReport

__all__ = ["DirectionFlow", "GradientFlowMonitor", "GradientFlowReport", "cell_flow",
           "gradcheck", "gradient_flow", "state_jacobians"]
