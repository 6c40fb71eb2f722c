"""Deployment: a trained model used outside training.

`predict` (photos to 28x28 images, then classes), `serve` and `page` (the HTTP API and
its web page), `export` (ONNX and Keras). May import `analysis`, `training` and the
layers below them; never `cli`.
"""
