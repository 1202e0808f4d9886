"""What a user can do. Each use case takes a fresh unit of work and the acting user's id first,
and can only ever see or touch that user's data."""
