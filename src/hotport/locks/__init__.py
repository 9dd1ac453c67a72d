"""hotport.locks."""
