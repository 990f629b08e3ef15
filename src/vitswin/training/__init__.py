"""Training: the one Trainer builder (`trainer`), fitting a classifier with checkpoints and resume (`fit`), the
resident batches (`batching`), processes and devices (`distributed`), runs side by side (`jobs`) and the
per-run loggers (`loggers`)."""
