"""Billing providers: their payload formats, signature schemes and event normalizers, one package
per provider (`whop/`, `stripe/`). Ingest reads deliveries with them; billing actions will call
their API clients."""
