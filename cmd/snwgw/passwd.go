package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/snwgw/snwgw/auth"
)

const passwdUsage = `usage: snwgw passwd [-c] [-D] [-b] FILE USER [PASSWORD]

Adds a user to the password file FILE, changes its password, or deletes it,
as mosquitto_passwd does. Passwords are hashed with bcrypt; the file keeps
the users' other hashes, including those written by mosquitto_passwd. The
file is replaced atomically and readable by its owner only (mode 0600).

  -c   create FILE, replacing any file of that name
  -D   delete USER
  -b   take PASSWORD from the command line (it is then visible to other
       processes and kept in shell history: prefer standard input)

Without -b the password is read twice from standard input, one per line.
`

// runPasswd implements "snwgw passwd".
func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { _, _ = io.WriteString(fs.Output(), passwdUsage) }
	create := fs.Bool("c", false, "create FILE, replacing any file of that name")
	del := fs.Bool("D", false, "delete USER")
	batch := fs.Bool("b", false, "take PASSWORD from the command line")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	want := 2
	if *batch {
		want = 3
	}
	switch {
	case *create && *del:
		return usageError{"passwd: -c and -D cannot be combined"}
	case *del && *batch:
		return usageError{"passwd: -D takes no password"}
	case fs.NArg() != want:
		return usageError{fmt.Sprintf("passwd: want %d arguments (FILE USER%s), got %d",
			want, map[bool]string{true: " PASSWORD"}[*batch], fs.NArg())}
	}
	path, user := fs.Arg(0), fs.Arg(1)

	var pw *auth.Passwords
	if *create {
		pw = auth.NewPasswords()
	} else {
		var err error
		if pw, err = auth.LoadPasswordFile(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("passwd: %s does not exist; use -c to create it", path)
			}
			return fmt.Errorf("passwd: %w", err)
		}
	}

	if *del {
		if !pw.Delete(user) {
			return fmt.Errorf("passwd: user %q not found in %s", user, path)
		}
		return pw.Save(path)
	}

	var password string
	if *batch {
		password = fs.Arg(2)
	} else {
		var err error
		if password, err = readPassword(stdin, stderr); err != nil {
			return err
		}
	}
	if err := pw.Set(user, []byte(password)); err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	return pw.Save(path)
}

// readPassword reads the password and its confirmation, one per line.
// On a terminal the typed characters are not echoed.
func readPassword(stdin io.Reader, prompt io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok {
		restore, err := noEcho(f)
		if err != nil {
			return "", fmt.Errorf("passwd: %w", err)
		}
		defer restore()
	}
	r := bufio.NewReader(stdin)
	var lines [2]string
	for i, p := range [2]string{"Password: ", "Reenter password: "} {
		_, _ = io.WriteString(prompt, p)
		line, err := r.ReadString('\n')
		_, _ = io.WriteString(prompt, "\n")
		if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
			if errors.Is(err, io.EOF) {
				return "", errors.New("passwd: no password given on standard input")
			}
			return "", fmt.Errorf("passwd: read password: %w", err)
		}
		lines[i] = strings.TrimRight(line, "\r\n")
	}
	if lines[0] != lines[1] {
		return "", errors.New("passwd: passwords do not match")
	}
	return lines[0], nil
}
