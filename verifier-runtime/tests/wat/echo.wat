;; Copies stdin to stdout in 4 KiB chunks, then exits 0.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: buffer 1024, length 4096; count at 16.
  (func (export "_start")
    (local $n i32)
    (loop $copy
      (i32.store (i32.const 0) (i32.const 1024))
      (i32.store (i32.const 4) (i32.const 4096))
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16))
        (then unreachable))
      (local.set $n (i32.load (i32.const 16)))
      (if (local.get $n)
        (then
          (i32.store (i32.const 4) (local.get $n))
          (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 20))
            (then unreachable))
          (br $copy))))))
