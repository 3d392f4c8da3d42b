"""What a parameter is: the role vocabulary, roles declared by blocks, roles traced from one forward pass,
the layer types and geometry detinit knows, and the gate blocks of recurrent layers."""
