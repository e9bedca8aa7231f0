"""target-pendo: a Singer target that syncs warehouse rows into Pendo."""
