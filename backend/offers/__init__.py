"""Offers: what a customer may be offered to stay, who may get it, what it costs, and its redemptions."""
