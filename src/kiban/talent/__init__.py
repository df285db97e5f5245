"""Specialist pool (専門人材の広域確保): profiles, needs, matching, engagements."""
