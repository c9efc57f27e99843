"""How work is scheduled: worker pools that keep the model fed."""
