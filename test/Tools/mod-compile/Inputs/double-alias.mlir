// Two results declared to replace the same argument.
func.func @step(%p: tensor<4xf32> {mod.name = "p"})
    -> (tensor<4xf32> {mod.name = "a", mod.aliases = 0 : i64},
        tensor<4xf32> {mod.name = "b", mod.aliases = 0 : i64}) {
  return %p, %p : tensor<4xf32>, tensor<4xf32>
}
