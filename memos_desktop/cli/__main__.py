from memos_desktop.cli import main

main()
