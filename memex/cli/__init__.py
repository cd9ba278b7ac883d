"""The command line (typer): `main` holds the app and the everyday commands; `daemon`,
`service`, `models` and `eval` add their groups; `output` prints JSON and errors alike."""
