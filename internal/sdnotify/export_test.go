package sdnotify

import "os"

var osGetpid = os.Getpid
