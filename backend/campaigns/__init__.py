"""Recovery campaigns: playbooks, their steps and variants, holdouts, enrollment and durable schedules."""
