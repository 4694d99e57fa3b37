"""Modules copied into a Triton repository or backend folder as model.py (Python backend)."""
