"""Centrifugo client protocol v2: messages, codes and the JSON codec. No I/O here."""
