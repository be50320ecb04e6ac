"""illicitflows: flags asset laundering in payments and mis-invoicing in customs declarations."""

__version__ = "0.1.0"
