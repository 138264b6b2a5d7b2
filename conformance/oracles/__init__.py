"""What the checks compare against: the golden fixtures (regen writes them) and live torch, and what differs between torch versions (torch-diff)."""
