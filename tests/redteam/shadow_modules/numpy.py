open('__MARKER__', 'w').close()
raise SystemExit('shadow numpy imported')
