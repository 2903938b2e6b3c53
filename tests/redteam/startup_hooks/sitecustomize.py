import os
os.system('touch __MARKER__')
