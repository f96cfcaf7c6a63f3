"""convclass: per-customer support-email classifiers on AWS.

The core modules (cleaning, tokenization, records, dataset, layout, events, artifacts) hold what every
deployment unit shares and never import TensorFlow, Pulumi or FastAPI; the adapters around them (export,
training, serving, local, cli) bring their dependencies through the package extras.
"""

__version__ = "0.1.0"
