"""Built-in simulated devices driven by a patient model of a ketamine session."""
