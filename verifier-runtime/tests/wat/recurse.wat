;; Recurses without a base case.
(module
  (memory (export "memory") 1)
  (func $down (param $depth i64) (result i64)
    (i64.add (call $down (i64.add (local.get $depth) (i64.const 1))) (i64.const 1)))
  (func (export "_start") (drop (call $down (i64.const 0)))))
