"""Declaration risk engine: rule packs as data, lanes with reasons, fusion with X-ray detections."""
