"""hotport.model."""
