"""The feedback loop: agents' final labels against the deployed model's predictions.

``events`` (bus events and stored rows), ``store`` (Parquet per event in the data bucket), ``metrics``
(agreement, PSI, drift), ``policy`` (when to retrain), ``labels`` (confirmed labels override exported ones)
and ``loop`` (the same against AWS: capture, evaluate, start a run through the training queue).
"""
