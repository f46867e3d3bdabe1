"""Evaluation: metrics, reduced-order (ROM) studies (on :mod:`sciops.rom`) and reports."""
