package store

// Store is the open data file. Its methods are safe for concurrent use.
type Store struct{}
