open('__MARKER__', 'w').close()
raise SystemExit('shadow torch imported')
