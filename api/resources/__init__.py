"""The API's resources: one module per resource, each a flask-smorest ``blp``."""
