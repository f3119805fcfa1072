"""The built-in actions, one module each; ``registry`` builds the name -> action table."""
