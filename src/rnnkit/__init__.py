"""rnnkit: fast, exact, NumPy-native recurrent neural networks."""
