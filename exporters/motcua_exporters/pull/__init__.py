"""A counter PC that configures itself: the pull of its configuration (issue #26)."""
