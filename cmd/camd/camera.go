package main

import (
	"context"
	"errors"
	"io"
)

func cmdCamera(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("not implemented yet")
}

func cmdStatus(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("not implemented yet")
}
