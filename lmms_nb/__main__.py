from lmms_nb.cli import program

program()
