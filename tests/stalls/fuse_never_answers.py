# A job's FUSE file system that answers its own calls and then, once a file
# has been renamed onto an id_rsa, never answers a look at that name.
import errno, os, stat, sys, time, signal
import fusepy

class Fs(fusepy.Operations):
    def __init__(self):
        now = time.time()
        self.nodes = {"/": dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2, st_ctime=now, st_mtime=now, st_atime=now)}
        self.data = {}
        self.hang = None

    def _node(self, path):
        if path not in self.nodes:
            raise fusepy.FuseOSError(errno.ENOENT)
        return self.nodes[path]

    def getattr(self, path, fh=None):
        if self.hang is not None and path == self.hang:
            while True:
                time.sleep(3600)
        return self._node(path)

    def readdir(self, path, fh):
        pre = path.rstrip("/") + "/"
        names = [p[len(pre):] for p in self.nodes if p != path and p.startswith(pre) and "/" not in p[len(pre):]]
        return [".", ".."] + names

    def mkdir(self, path, mode):
        now = time.time()
        self.nodes[path] = dict(st_mode=stat.S_IFDIR | mode, st_nlink=2, st_ctime=now, st_mtime=now, st_atime=now)

    def create(self, path, mode, fi=None):
        now = time.time()
        self.nodes[path] = dict(st_mode=stat.S_IFREG | mode, st_nlink=1, st_size=0, st_ctime=now, st_mtime=now, st_atime=now)
        self.data[path] = b""
        return 0

    def open(self, path, flags):
        self._node(path)
        return 0

    def write(self, path, buf, offset, fh):
        d = self.data.get(path, b"")
        d = d[:offset] + buf + d[offset + len(buf):]
        self.data[path] = d
        self.nodes[path]["st_size"] = len(d)
        return len(buf)

    def read(self, path, size, offset, fh):
        return self.data.get(path, b"")[offset:offset + size]

    def truncate(self, path, length, fh=None):
        self.data[path] = self.data.get(path, b"")[:length]
        self.nodes[path]["st_size"] = length

    def utimens(self, path, times=None):
        return 0

    def chmod(self, path, mode):
        return 0

    def rename(self, old, new):
        self.nodes[new] = self.nodes.pop(old)
        if old in self.data:
            self.data[new] = self.data.pop(old)
        if os.path.basename(new) == "id_rsa":
            self.hang = new

    def unlink(self, path):
        self.nodes.pop(path, None)
        self.data.pop(path, None)

mnt = sys.argv[1]
server = os.fork()
if server == 0:
    fusepy.FUSE(Fs(), mnt, foreground=True, nothreads=False, attr_timeout=0, entry_timeout=0, negative_timeout=0)
    os._exit(0)
for _ in range(500):
    if os.path.ismount(mnt):
        break
    time.sleep(0.01)
else:
    os.kill(server, signal.SIGKILL)
    sys.exit("the FUSE server did not mount")
os.makedirs(mnt + "/h/.ssh")
with open(mnt + "/h/.ssh/incoming", "w") as f:
    f.write("not a key\n")
os.rename(mnt + "/h/.ssh/incoming", mnt + "/h/.ssh/id_rsa")
print(os.getpid(), flush=True)
sys.stdin.read()  # until the test is done
os.kill(server, signal.SIGKILL)
os.waitpid(server, 0)
