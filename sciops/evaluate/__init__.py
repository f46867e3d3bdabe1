"""Evaluation: metrics, reduced-order (ROM) analysis and reports."""
