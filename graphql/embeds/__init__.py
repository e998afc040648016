"""GraphQL for embeds: the widget's settings, the publishable key and the widget secret."""
