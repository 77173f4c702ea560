"""What produces samples for the engine through its public ingest calls: BLE, simulator, replay."""
