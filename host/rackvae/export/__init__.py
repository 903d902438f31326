"""Turning a trained model into the files a module loads: .tflite with xen metadata, C arrays, model card."""
