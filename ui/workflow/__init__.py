"""The clinical workflow on screen: login and first start, check-in, pre-dose, dose, fast scale
entry, quick events and notes, the task list and banner, discharge, and the automatic lock."""

from .session import WorkflowUi

__all__ = ["WorkflowUi"]
