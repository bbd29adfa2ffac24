"""Field work done offline on cadres' phones and synced in batches (visits, measures, evidence links)."""
