"""convclass: per-customer support-email classifiers on AWS.

The core package holds what every deployment unit shares (cleaning, record and manifest schemas, the S3 layout,
resource names). It never imports TensorFlow, boto3, Pulumi or FastAPI; those live behind extras.
"""

__version__ = "0.1.0"
