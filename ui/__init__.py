"""Denoiser's Qt desktop app (PySide6): windows and widgets over the engine; no numerical code here."""
