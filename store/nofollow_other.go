//go:build !unix

package store

// oNoFollow is 0 where there is no O_NOFOLLOW: Open's Lstat check is then
// the only guard against a link.
const oNoFollow = 0
