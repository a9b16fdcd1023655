package main

import (
	"context"
	"errors"
	"io"
)

func cmdInstall(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("not implemented yet")
}

func cmdUninstall(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("not implemented yet")
}

func cmdServiceStart(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("not implemented yet")
}

func cmdServiceStop(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("not implemented yet")
}

func cmdServiceRestart(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("not implemented yet")
}

func cmdService(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("not implemented yet")
}
