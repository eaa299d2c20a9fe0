"""Legacy Converted Enhanced CT, MR and PET images (private: use :mod:`radbridge.legacy`)."""
