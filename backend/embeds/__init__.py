"""Embeds: how a tenant's site embeds the widget (keys, origins, branding, survey, cancel handling)."""
