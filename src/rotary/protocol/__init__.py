"""Protocol v2: commands, replies, pushes, codes and the JSON codec. No I/O here."""
